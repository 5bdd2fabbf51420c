<?php
/* GET: the list items, for hx-get refreshes (hx-trigger="rhtmx:todos:changed from:body"). */
require __DIR__ . '/lib.php';
todo_reply(todo_db());
