"""Scenaria: marketing-automation scenarios (customer journeys) on AWS serverless."""
