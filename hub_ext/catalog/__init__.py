"""Courses and templates: the model and its loader (model), the field rules every template
passes (rules), and the runtime store of admin-edited templates over the course files (store)."""
