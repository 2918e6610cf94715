"""Accounts and enrolment: how people log in (local accounts, LMS launches, the demo's
shared password) and which courses they are in (rosters, LMS launches, term close)."""
