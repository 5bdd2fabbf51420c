-- Three people: alice and bob share "Groceries"; each has a list of their own.
INSERT INTO lists (id, name) VALUES (1, 'Groceries'), (2, 'Alice at work'), (3, 'Bob''s garage');
INSERT INTO list_members VALUES (1, 'alice'), (1, 'bob'), (2, 'alice'), (3, 'bob');
INSERT INTO todos (list_id, title) VALUES (1, 'Milk'), (1, 'Bread'), (2, 'Slides'), (3, 'Fix the bike');
