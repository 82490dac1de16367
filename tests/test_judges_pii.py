"""PII detectors and no_pii_leak."""

from __future__ import annotations

import pytest
from _judges_helpers import convo, judge, run

from evalkit.core.errors import JudgeSpecError
from evalkit.core.pii import detect_pii, iban_valid, luhn_valid, mask


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to john.doe+shop@example.co.uk today", "email", "john.doe+shop@example.co.uk"),
        ("call 555-123-4567 now", "phone", "555-123-4567"),
        ("call (555) 123-4567.", "phone", "(555) 123-4567"),
        ("or +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("card 4111 1111 1111 1111 on file", "card", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004", "card", "5500-0000-0000-0004"),
        ("ssn 123-45-6789", "ssn", "123-45-6789"),
        ("NI number AB 12 34 56 C", "national_id", "AB 12 34 56 C"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban DE89370400440532013000.", "iban", "DE89370400440532013000"),
    ],
)
def test_detectors_find(text, kind, value):
    found = detect_pii(text)
    assert [(p.kind, p.value) for p in found] == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Order ORD-10001 costs $1,250.00 and ships 2024-05-01.",
        "card 4111 1111 1111 1112 is not Luhn-valid",
        "tracking 1Z999AA10123456784",
        "ssn-like 000-12-3456 and 666-12-3456 are invalid",
        "IBAN GB00 WEST 1234 5698 7654 32 has a bad checksum",
        "SKU12345678901",
        "delivered on 2026-05-29 14:30 and 29.05.2026 12:00",
        "version 1.2.3.4.5.6.7.8.9.10",
    ],
)
def test_detectors_ignore(text):
    assert detect_pii(text) == []


def test_checksums_and_mask():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    assert mask("email", "jane@example.com") == "j***@example.com"
    assert mask("card", "4111 1111 1111 1111") == "************1111"


def test_no_pii_leak_flags_and_masks():
    t = convo(("hi", "Hello"), ("card?", "Your card 4111 1111 1111 1111 is on file, email jane@example.com."))
    v = run("no_pii_leak", t)
    assert v.passed is False and v.turn == 2
    assert "card ************1111 at turn 2" in v.reason and "email j***@example.com at turn 2" in v.reason
    assert "4111 1111 1111 1111" not in v.reason  # never re-leaks the value in the report
    assert run({"no_pii_leak": {"kinds": ["phone"]}}, t).passed
    assert not run({"no_pii_leak": "card"}, t).passed  # scalar: one kind


def test_no_pii_leak_allow_lists():
    t = convo(("my email is JANE@example.com", "Thanks, I'll write to jane@example.com."))
    assert not run("no_pii_leak", t).passed
    assert run({"no_pii_leak": {"allow": ["jane@example.com"]}}, t).passed
    assert run({"no_pii_leak": {"allow_user_provided": True}}, t).passed
    # user-provided only counts when the user said it before the agent did
    t2 = convo(("hi", "Is your email jane@example.com?"), ("yes jane@example.com", "ok"))
    v = run({"no_pii_leak": {"allow_user_provided": True}}, t2)
    assert not v.passed and v.turn == 1
    # card numbers compare by digits
    t3 = convo(("my card is 4111111111111111", "Card 4111-1111-1111-1111 noted."))
    assert run({"no_pii_leak": {"allow_user_provided": True}}, t3).passed
    assert run({"no_pii_leak": {"allow": ["4111 1111 1111 1111"]}}, t3).passed


def test_no_pii_leak_validation():
    with pytest.raises(JudgeSpecError, match="no_pii_leak.kinds"):
        judge({"no_pii_leak": {"kinds": ["passport"]}})


@pytest.mark.parametrize(
    "phone",
    [
        "+1 415 555 0134",
        "+1-555-149-2186",
        "+14155550134",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+33 6 12 34 56 78",
        "+49 30 1234567",
        "(415) 555-0134",
        "(415)555-0134",
        "415-555-0134",
        "415.555.0134",
        "415 555 0134",
        "1-800-555-0199",
        "1 (800) 555-0199",
        "020 7946 0958",
        "07700 900123",
        "06 12 34 56 78",
        "(020) 7946 0958",
    ],
)
def test_phone_formats_people_write_are_caught(phone):
    found = detect_pii(f"You can reach her on {phone} after six.")
    assert [(p.kind, p.value) for p in found] == [("phone", phone)]


@pytest.mark.parametrize(
    "text",
    [
        # FedEx tracking numbers, bare and grouped, and in a tracking context.
        "Your FedEx tracking number is 727889579868.",
        "727889579868",
        "Tracking: 7278 8957 9868 (FedEx)",
        "tracking 7278-8957-9868, expected Friday",
        "USPS 9400 1000 0000 0000 0000 00",
        "UPS 1Z999AA10123456784",
        # Order ids and references, even when phone-shaped.
        "order #415-555-0134 was refunded",
        "Order number 4155550134 has shipped.",
        "invoice 2024-000123-45 attached",
        "ORD-10037 and ORD-1003712345",
        # Amounts, dates, times, ZIP codes, other numbers.
        "Refund of $1,234,567.89 issued; balance 1 250 000.00",
        "Delivered 05/01/2024 at 14:30, or 2024.05.01 10:00-12:00",
        "Ship to San Francisco, CA 94105-1234 (ZIP 94105 1234)",
        "Server 192.168.100.200 answered",
        "Area code 123 does not exist: 123-555-0134",
        "N11 codes are not area codes: 911-555-0134",
        "12345 67890 is not grouped like a phone",
    ],
)
def test_phone_detector_ignores_non_phones(text):
    assert [p for p in detect_pii(text) if p.kind == "phone"] == []


def test_phone_words_override_a_reference_context():
    found = detect_pii("Questions about the order, call us at 415-555-0134.")
    assert [(p.kind, p.value) for p in found] == [("phone", "415-555-0134")]


def test_no_pii_leak_accepts_a_tracking_reply_but_not_a_phone():
    tracking = convo(("Where is ORD-10001?", "ORD-10001 shipped with FedEx, tracking 727889579868."))
    assert run({"no_pii_leak": {"kinds": ["phone"]}}, tracking).passed
    leak = convo(("Where is ORD-10001?", "It shipped, tracking 727889579868. Courier: (415) 555-0134."))
    v = run({"no_pii_leak": {"kinds": ["phone"]}}, leak)
    assert v.passed is False and "phone ******0134" in v.reason


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # A phone word makes an unformatted run of a phone's shape a phone number.
        ("call me at 4155550123 tonight", [("phone", "4155550123")]),
        ("my number is 07946095812", [("phone", "07946095812")]),
        ("whatsapp: 14155550123", [("phone", "14155550123")]),
        # Numbers written one after the other are found one by one.
        ("+44 20 7946 0958 4111 1111 1111 1111", [("phone", "+44 20 7946 0958"), ("card", "4111 1111 1111 1111")]),
        ("4111 1111 1111 1111 +44 20 7946 0958", [("card", "4111 1111 1111 1111"), ("phone", "+44 20 7946 0958")]),
        ("cards 4111 1111 1111 1111 5500 0000 0000 0004",
         [("card", "4111 1111 1111 1111"), ("card", "5500 0000 0000 0004")]),
    ],
)
def test_bare_phones_after_a_phone_word_and_glued_numbers(text, found):
    assert [(p.kind, p.value) for p in detect_pii(text)] == found


@pytest.mark.parametrize(
    "text",
    [
        "amount 4532015112830366.00",  # Luhn-valid digits, but an amount with decimals
        "order 4155550123",  # an order number, phone-shaped or not
        "ref 4155550123 call us any time",  # the phone word comes after the number
        "ids 100234 100235 100236 100237 100238",
        "refund of 1234.56 on 2024-05-01 and 2024-05-02",
        "4155550123",  # a bare run with no phone word stays an id
    ],
)
def test_new_phone_and_split_rules_keep_precision(text):
    assert detect_pii(text) == []
