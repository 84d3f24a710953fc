-- Every process's outbox sender LISTENs on `rollback_outbox`. The database notifies it when a
-- message is owed, at the commit of the transaction that owes it (a rolled-back one notifies
-- nobody), so a writer no longer sends its own `pg_notify` round trip. Once per statement:
-- PostgreSQL folds identical notifications of one transaction into one anyway.
create function outbox_owed_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('rollback_outbox', '');
    return null;
end
$$;

create trigger outbox_owed after insert on outbox
    for each statement execute function outbox_owed_notify();
