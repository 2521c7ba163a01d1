"""What a QR code is and what it carries."""
