"""What is kept between runs: history, the resume position."""
