"""Who people are and how they prove it: admins and end users."""
