"""problem_files stage of cognitive_action."""
