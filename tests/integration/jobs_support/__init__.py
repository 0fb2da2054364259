"""Test workflows, a worker subprocess runner and fixtures for the job-engine tests."""
