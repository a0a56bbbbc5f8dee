"""The classifier and its attribution maps in other libraries (a PyTorch copy, Captum), for the tests that hold
the service's maps to them and the bench that times the service against them. Needs the dev extra (torch,
captum); nothing shipped imports it."""
