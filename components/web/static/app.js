// Small enhancements; every page works without them.
(function () {
  // Prices are shown with two decimals once typed (5 -> 5.00).
  document.querySelectorAll("input[data-price]").forEach(function (input) {
    input.addEventListener("blur", function () {
      var value = parseFloat(input.value);
      if (!isNaN(value) && /^\s*\d+(\.\d*)?\s*$/.test(input.value)) input.value = value.toFixed(2);
    });
  });

  // Live countdown on the order page; the payment form goes away when time is up.
  var countdown = document.querySelector("[data-expires-at]");
  if (countdown) {
    var expiresAt = Date.parse(countdown.getAttribute("data-expires-at"));
    var seconds = document.getElementById("seconds-left");
    var tick = function () {
      var left = Math.round((expiresAt - Date.now()) / 1000);
      if (left <= 0) {
        countdown.hidden = true;
        document.querySelectorAll("[data-while-open]").forEach(function (el) { el.hidden = true; });
        document.getElementById("expired").hidden = false;
        clearInterval(timer);
        return;
      }
      seconds.textContent = String(left);
    };
    var timer = setInterval(tick, 1000);
    tick();
  }

  // With a real publishable key, Stripe.js collects the card and makes the token.
  var pay = document.querySelector("form[data-stripe-key]");
  if (pay) {
    var script = document.createElement("script");
    script.src = "https://js.stripe.com/v3/";
    script.onload = function () {
      var stripe = window.Stripe(pay.getAttribute("data-stripe-key"));
      var card = stripe.elements().create("card");
      card.mount("#card-element");
      pay.addEventListener("submit", function (event) {
        if (pay.token.value) return;
        event.preventDefault();
        stripe.createToken(card).then(function (result) {
          if (result.error) { alert(result.error.message); return; }
          pay.token.value = result.token.id;
          pay.submit();
        });
      });
    };
    document.head.appendChild(script);
  }
})();
