"""What the guide screen is told: recommendations and sales scripts (话术)."""
