# -*- coding: utf-8 -*-
"""Test helpers shared by the test modules: local servers and fixtures."""
