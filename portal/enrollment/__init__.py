"""What happens when a device uses a QR code."""
