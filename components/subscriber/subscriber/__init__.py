"""XGBoost wine-quality inference as a Greengrass container component."""
