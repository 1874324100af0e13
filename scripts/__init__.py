"""Deploy tooling: the command line and the two targets at the top, the work by stage below (building, publishing,
fleet, local, cloud)."""
