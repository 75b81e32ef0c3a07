"""The read side: schedule batches, session lists, availability, free slots and conflicts."""
