"""Pure SOMA protocol knowledge (no I/O). Everything else imports rules from here."""
