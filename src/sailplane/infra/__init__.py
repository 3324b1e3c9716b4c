"""Infrastructure in the customer's cloud: connections, networks and clusters."""
