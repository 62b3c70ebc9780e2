"""The DeskPilot windows: agents, permissions, approvals, ask."""
