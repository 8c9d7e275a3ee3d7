"""Evidence export: archives of sightings, searches and alerts that verify later."""
