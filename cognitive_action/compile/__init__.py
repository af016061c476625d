"""compile stage of cognitive_action."""
