/* Label downloads with their progress shown. Plain JS, no framework.
 *
 * The export streams one line per label and says in X-Handrail-Rows how many it
 * will write, so the page counts the lines as they arrive and draws a progress
 * bar, then saves the file under the server's name. Without JavaScript (or
 * streams) the form stays a plain GET and the browser saves the file itself.
 */
(function () {
  "use strict";

  var form = document.querySelector("form.label-downloads");
  var box = document.getElementById("labels-progress");
  if (!form || !box || !window.fetch || !window.ReadableStream) return;
  var bar = box.querySelector("progress");
  var status = box.querySelector("[role=status]");
  var busy = false;

  function number(n) {
    return n.toLocaleString("en");
  }

  function filename(response) {
    var match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    return match ? match[1] : "labels";
  }

  function show(rows, total) {
    if (isNaN(total)) {
      status.textContent = number(rows) + " labels so far";
      return;
    }
    bar.max = Math.max(total, 1);
    bar.value = Math.min(rows, total);
    status.textContent = number(Math.min(rows, total)) + " of " + number(total) + " labels";
  }

  function save(parts, type, name) {
    var url = URL.createObjectURL(new Blob(parts, { type: type }));
    var link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  // Reads the whole body, counting its lines; resolves with its chunks.
  function read(response, headerLines, total) {
    var reader = response.body.getReader();
    var parts = [];
    var lines = 0;
    function next() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return parts;
        parts.push(chunk.value);
        for (var i = 0; i < chunk.value.length; i++) {
          if (chunk.value[i] === 10) lines++;
        }
        show(Math.max(lines - headerLines, 0), total);
        return next();
      });
    }
    return next();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var action = (event.submitter && event.submitter.getAttribute("formaction")) || form.action;
    var url = new URL(action, window.location.href);
    var since = form.elements.since.value;
    if (since) url.searchParams.set("since", since);
    busy = true;
    box.hidden = false;
    bar.hidden = false;
    bar.removeAttribute("value");
    status.textContent = "Preparing the export…";
    fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (text) {
            throw new Error(text.trim() || response.statusText);
          });
        }
        var type = response.headers.get("Content-Type") || "";
        var total = parseInt(response.headers.get("X-Handrail-Rows") || "", 10);
        var headerLines = type.indexOf("text/csv") === 0 ? 1 : 0;
        show(0, total);
        return read(response, headerLines, total).then(function (parts) {
          var name = filename(response);
          save(parts, type, name);
          status.textContent = "Saved " + name + ": " + status.textContent + ".";
        });
      })
      .catch(function (error) {
        bar.hidden = true;
        status.textContent = "The export failed: " + error.message;
      })
      .then(function () {
        busy = false;
      });
  });
})();
