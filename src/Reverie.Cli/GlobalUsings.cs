// The names every command uses.
global using System.CommandLine;
global using System.Globalization;
global using Reverie.Jobs;
global using Spectre.Console;
global using System.Text.Json.Nodes;
global using Reverie.Imaging;
global using Reverie.Models;
global using Reverie.Objectives;
