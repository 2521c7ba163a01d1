"""Settings an admin changes at run time: Companion, OTP defaults, localizations."""
