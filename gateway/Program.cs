using Kosmos2.Gateway;
using Kosmos2.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("kosmos2-gateway");
builder.AddGateway();

var app = builder.Build();
app.MapServiceDefaults();
app.MapGateway();
app.Run();
