"""junit.xml: structure, counts, failure text, escaping, and a schema check."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from _results_factory import conv, run

from evalkit.core.transcript import Outcome
from evalkit.reports.junit import junit_xml, write_junit


def _run():
    r = run(
        [
            conv("refund", trial=0, tags=("billing",)),
            conv("refund", trial=1, passed=False, tags=("billing",), reason="refund_issued was not called",
                 messages=("I want my money back", "order A-1")),
            conv("track", passed=None),
            conv("crash", passed=None, outcome=Outcome.error, error="TimeoutError: agent took > 30 s"),
            conv("refund", trial=0, variant="B", tags=("billing",)),
        ],
        variants={"default": "my_agent:create", "B": "my_agent:create_v2"},
    )
    r.manifest.suites = ["datasets/support"]
    r.manifest.started_at = "2026-11-25T08:00:00+00:00"
    return r


def test_structure_counts_and_names(tmp_path):
    path = write_junit(_run(), tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["support/B", "support/default"]
    default = suites[1]
    assert (default.get("tests"), default.get("failures"), default.get("errors"), default.get("skipped")) == ("4", "1", "1", "1")
    for attr in ("time", "timestamp", "hostname"):
        assert default.get(attr)
    props = {p.get("name"): p.get("value") for p in default.find("properties")}
    assert props["agent"] == "my_agent:create" and props["variant"] == "default"
    names = [c.get("name") for c in default.findall("testcase")]
    assert names == ["crash[0]", "refund[0]", "refund[1]", "track[0]"]
    case = default.find("testcase[@name='refund[1]']")
    assert case.get("classname") == "support.default.billing"
    assert float(case.get("time")) > 0


def test_failure_error_and_skipped_content():
    root = ET.fromstring(junit_xml(_run()))
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    fail = cases[("support.default.billing", "refund[1]")].find("failure")
    assert "refund_issued was not called" in fail.get("message")
    assert "tool_called(check_order_status)" in fail.get("message")
    assert ">> [1] user: I want my money back" in fail.text  # excerpt around the failing turn
    assert "FAILED tool_called(check_order_status) at turn 1" in fail.text
    err = cases[("support.default", "crash[0]")].find("error")
    assert "TimeoutError" in err.get("message") and err.get("type") == "evalkit.agent_error"
    assert "[1] agent (100 ms): agent reply 1" in err.text
    skipped = cases[("support.default", "track[0]")].find("skipped")
    assert skipped is not None and "no deterministic verdict" in skipped.get("message")
    ok = cases[("support.default.billing", "refund[0]")]
    assert list(ok) == []


def test_hostile_text_is_escaped_and_control_chars_removed():
    r = run([conv("x", passed=False, reason='<b>"bad"</b> & \x00\x1b[31m', messages=("</failure><script>",))])
    data = junit_xml(r)
    root = ET.fromstring(data)  # still well-formed
    fail = next(root.iter("failure"))
    assert '<b>"bad"</b> &' in fail.get("message")
    assert "\x00" not in data.decode() and "\x1b" not in data.decode()
    assert "</failure><script>" in fail.text


def test_long_transcript_goes_to_system_out():
    r = run([conv("long", passed=False, latencies=tuple(100.0 for _ in range(8)))])
    case = next(ET.fromstring(junit_xml(r)).iter("testcase"))
    assert "[5] user" not in case.find("failure").text  # only around turn 1
    assert "[8] agent" in case.find("system-out").text


def test_empty_run_is_valid():
    root = ET.fromstring(junit_xml(run([])))
    assert root.get("tests") == "0"


# A subset of the Jenkins/Ant JUnit schema (junit-10.xsd): elements, order, required attributes.
_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
 <xs:element name="testsuites"><xs:complexType><xs:sequence>
  <xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
  <xs:attribute name="name"/><xs:attribute name="time"/><xs:attribute name="tests"/>
  <xs:attribute name="failures"/><xs:attribute name="errors"/><xs:attribute name="skipped"/>
 </xs:complexType></xs:element>
 <xs:element name="testsuite"><xs:complexType><xs:sequence>
  <xs:element name="properties" minOccurs="0"><xs:complexType><xs:sequence>
   <xs:element name="property" maxOccurs="unbounded"><xs:complexType>
    <xs:attribute name="name" use="required"/><xs:attribute name="value" use="required"/>
   </xs:complexType></xs:element></xs:sequence></xs:complexType></xs:element>
  <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
  <xs:attribute name="name" use="required"/><xs:attribute name="tests" use="required"/>
  <xs:attribute name="failures"/><xs:attribute name="errors"/><xs:attribute name="skipped"/>
  <xs:attribute name="time"/><xs:attribute name="timestamp"/><xs:attribute name="hostname"/>
 </xs:complexType></xs:element>
 <xs:element name="testcase"><xs:complexType><xs:sequence>
  <xs:element name="skipped" minOccurs="0"><xs:complexType><xs:attribute name="message"/></xs:complexType></xs:element>
  <xs:element name="error" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:simpleContent>
   <xs:extension base="xs:string"><xs:attribute name="message"/><xs:attribute name="type"/></xs:extension>
  </xs:simpleContent></xs:complexType></xs:element>
  <xs:element name="failure" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:simpleContent>
   <xs:extension base="xs:string"><xs:attribute name="message"/><xs:attribute name="type"/></xs:extension>
  </xs:simpleContent></xs:complexType></xs:element>
  <xs:element name="system-out" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence>
  <xs:attribute name="name" use="required"/><xs:attribute name="classname" use="required"/>
  <xs:attribute name="time"/>
 </xs:complexType></xs:element>
</xs:schema>"""


def test_valid_against_junit_schema_when_lxml_is_installed():
    import pytest

    etree = pytest.importorskip("lxml.etree")
    schema = etree.XMLSchema(etree.fromstring(_XSD.encode()))
    doc = etree.fromstring(junit_xml(_run()))
    assert schema.validate(doc), schema.error_log


def test_structure_matches_schema_rules_without_lxml():
    # The same rules, checked by hand so they run everywhere.
    root = ET.fromstring(junit_xml(_run()))
    for ts in root.findall("testsuite"):
        assert ts.get("name") and ts.get("tests")
        children = [c.tag for c in ts]
        assert children[0] == "properties" and set(children[1:]) == {"testcase"}
        assert int(ts.get("tests")) == len(children) - 1
        for case in ts.findall("testcase"):
            assert case.get("name") and case.get("classname")
            tags = [c.tag for c in case]
            order = ["skipped", "error", "failure", "system-out"]
            assert tags == sorted(tags, key=order.index)
            assert sum(t in ("skipped", "error", "failure") for t in tags) <= 1
