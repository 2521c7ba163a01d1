"""The license pool: total, used, reserved, remaining."""
