"""The local stack behind `make run`: the whole stack on an in-memory AWS (moto)."""
