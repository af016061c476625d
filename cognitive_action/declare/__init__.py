"""declare stage of cognitive_action."""
