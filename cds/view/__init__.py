"""The clinician view: the service's cards in a browser, the way an EHR shows them."""
