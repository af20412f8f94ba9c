"""Clients of the burst catalogue (CDSE OData ``Bursts``)."""
