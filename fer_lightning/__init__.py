"""fer-lightning: Lightning + Hydra experiments for facial emotion recognition on FER-2013."""
