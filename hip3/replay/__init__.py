"""`hip3 replay`: the real bot trading against an exchange whose books follow a raw market recording."""
