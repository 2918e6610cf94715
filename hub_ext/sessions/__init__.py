"""Scheduled class sessions: the enrolled students' servers started before a class begins,
the unopened ones stopped 20 minutes in (planner: the rules, pure; store: the database;
loop: the service's pass that carries a plan out)."""
