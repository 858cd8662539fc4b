"""Open-arrival engine on top of Locust: people arrive when the clock says, not when an agent is free."""
