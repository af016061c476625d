"""verify stage of cognitive_action."""
