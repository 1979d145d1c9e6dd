"""`1min-relay doctor`: probe the live 1min.ai with the user's key and compare what it does with what the
simulator assumes (reference §18), item by item; `1min-relay refresh-catalogue` rewrites the shipped
catalogue snapshot from it. See docs/doctor.md."""
