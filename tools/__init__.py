"""Development tools of the casty_trio repository (not part of the installed package)."""
