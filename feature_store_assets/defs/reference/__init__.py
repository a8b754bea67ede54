"""Reference data: the IRS SOI ZIP income file and each client's ZIP income."""
