"""The compliance pages: samples, working through one, reports, and the trail."""
