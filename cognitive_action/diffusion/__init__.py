"""diffusion stage of cognitive_action."""
