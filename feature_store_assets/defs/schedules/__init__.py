"""Jobs and schedules: the monthly job and its schedule."""
