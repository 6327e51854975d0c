"""Multi-view: which w layers are the view code, and (later) view codes x content codes."""
