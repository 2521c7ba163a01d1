"""The Companion simulator: plays a device scanning a QR code and enrolling over HTTP."""
