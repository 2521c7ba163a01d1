"""What Android reads: the provisioning payload, its Wi-Fi rules and the QR images (no database)."""
