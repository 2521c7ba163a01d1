"""What the tests run against: real servers on loopback, the portal served live, QR reading."""
