"""Generator quality as a network that knows car parts sees it (`gan eval`)."""
