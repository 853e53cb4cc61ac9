"""Unit tests: plain functions and small fixtures, each in well under a second (the fast lane)."""
