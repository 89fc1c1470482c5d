"""Test support: fakes of the services multinet talks to (see README.md)."""
