"""derive stage of cognitive_action."""
