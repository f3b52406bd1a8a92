-- When the requester was first answered, whichever level answered, in business seconds of N1's
-- calendar from the ticket's creation (`sla::SlaState::answered_seconds`): the ticket's first
-- response in the per-tenant report. NULL until answered, and for tickets closed before this
-- column (the report then adds up the levels' first responses, as before).
ALTER TABLE support_tickets ADD COLUMN answered_seconds BIGINT;
