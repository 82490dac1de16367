"""Agent adapters: how evalkit talks to the agent under test."""

from evalkit.agents.base import AgentAdapter, AgentConfig, AgentProvider, AgentReply, SessionInfo, TurnContext
from evalkit.agents.loader import SCHEMES, load_agent
from evalkit.agents.session import AgentJunk, normalize_reply

__all__ = [
    "AgentAdapter",
    "AgentConfig",
    "AgentProvider",
    "AgentReply",
    "SessionInfo",
    "TurnContext",
    "SCHEMES",
    "load_agent",
    "AgentJunk",
    "normalize_reply",
]
